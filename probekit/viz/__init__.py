"""Pictures of attention: the offline head browser and head plots."""
