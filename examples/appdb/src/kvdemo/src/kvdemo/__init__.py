"""hostout's two-part docker example: ``server`` keeps keys in a JSON file under var/,
``app`` answers over HTTP with a value it reads from the server (the seed's ZEO server and
client, in a few lines of the standard library)."""
