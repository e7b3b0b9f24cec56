"""The bundled model files; installed as the data package ``handsdk_models`` so that a wheel
carries them (found by :func:`handsdk.models.bundled_models_dir`)."""
