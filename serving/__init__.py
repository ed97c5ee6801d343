"""The scoring API and review workspace (FastAPI); imports from models, never from training."""
