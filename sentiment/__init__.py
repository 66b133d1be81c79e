"""What the Lambda, the model server and training share: the featurizer, the wire format and the model folder."""
