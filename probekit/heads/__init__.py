"""What attention heads do: Clark et al.'s statistics, head distances, attention gradients."""
