"""The QEMU lab: both nodes booted from the image, in a private network namespace."""
