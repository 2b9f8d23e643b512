"""Getting data in: file import with validation, and the sample-data generator."""
