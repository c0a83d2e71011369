"""Face app: MTCNN-style cascade detector, 5-point alignment, age/gender on the shared backbone."""
