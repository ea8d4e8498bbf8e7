"""Qt helpers every part of the window uses: the palette and style sheets, work handed to and from other
threads, saved settings."""
