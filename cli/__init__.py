"""The `crossdeploy` command and what only it uses: the top layer (it may import every other)."""
