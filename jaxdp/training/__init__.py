"""One training run: its protocol and identity (`protocol`), the step (`step`), the batches
(`batches`), the loop (`loop`), the run folder that trains, resumes and scores (`run`), with the
checks, checkpoints, metrics, loggers, stopping rule and limits it uses, and packed runs (`pack`)."""
