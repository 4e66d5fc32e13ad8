"""What hostout knows about servers, without a connection: OS releases and their Python
install plans, Debian package closures for servers with no mirror, login keys."""
