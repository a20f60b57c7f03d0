"""Training: fine-tune a torchvision classifier and write a self-describing checkpoint."""
