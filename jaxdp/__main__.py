import sys

from jaxdp.runtime.devices import use_cpu_cores_for_command

use_cpu_cores_for_command("python -m jaxdp")  # one jax device per CPU core, before jax starts (jaxdp.runtime.devices)

from jaxdp.cli import main  # noqa: E402

sys.exit(main())
