"""Training, pseudo-labelling and export of handsdk's own models (needs ``handsdk[train]``)."""
