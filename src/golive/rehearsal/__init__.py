"""Local stand-ins for the outside world during a rehearsal: load, legacy system, credit bureau."""
