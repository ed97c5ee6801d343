"""Control list, watch list, normalisation, candidate models, safe storage and the MLflow registry."""
