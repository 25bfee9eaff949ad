"""Is attention explanation? Jain & Wallace, Serrano & Smith, Wiegreffe & Pinter and ERASER on any classifier."""
