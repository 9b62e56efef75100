"""keepers: the photo-curation daemon.

Sub-packages follow a photo's path through the service: ``watch`` finds it,
``imaging`` decodes it, ``scoring`` measures it, ``store`` keeps the result,
``album`` picks the best of each group, ``hub`` fetches the learned models,
``service`` wires the parts together and ``cli`` is the command line.
"""

__version__ = "0.1.0"
