"""Fig. 13's real-data experiment: image data, convolutional teacher and students (Flax), the experiment, its plot."""
