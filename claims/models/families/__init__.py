"""Model families. Each offers the scikit-learn contract over the flat label space."""
