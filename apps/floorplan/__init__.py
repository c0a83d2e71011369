"""Floor-plan app: walls, doors/windows and typed rooms from plan rasters; vectors and 3D."""
