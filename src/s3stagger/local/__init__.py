"""Local mode: the embedded AWS emulator, the local Lambda runtime, provisioning and simulators."""
