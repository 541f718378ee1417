"""media: media objects, variants and upload state."""
