"""The API key: how it is made, where it is kept, how it is rotated."""
