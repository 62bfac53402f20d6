"""The deploy steps (tasks/) against the sandbox through the credential blocks: account B's and
account A's steps, the write-ahead intents, following a change order, the blocks."""
