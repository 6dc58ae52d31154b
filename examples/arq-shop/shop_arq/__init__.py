"""The same shop on arq: orders recorded by an asyncio worker."""
