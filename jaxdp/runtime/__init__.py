"""What every layer above leans on, and nothing of the paper: errors that name the bad field,
files no kill leaves torn, fault points for the tests, deferred interrupts, the devices a CPU
is split into, host memory kept between steps, and input validation."""
