"""Tests of the case store (`queues/`): models, migrations, projection, rebuild, CLI."""
