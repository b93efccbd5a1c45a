"""The CLI sub-commands, one module per group; each is thin and delegates to the packages."""
