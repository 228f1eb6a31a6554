"""The catalog every node module declares into."""
from latentloom.app.core.catalog import Catalog

catalog = Catalog()
node = catalog.node
