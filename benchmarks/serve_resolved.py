"""`feast serve` with every feature service resolved once: the baseline of
benchmarks/serve.py. FeatureStore.get_feature_service, which the feature
server calls for each request by feature service, returns the object its
first call got, for every later call; everything else is Feast's `feast`
command as it is (its arguments are this script's).

    python benchmarks/serve_resolved.py -c REPO serve -p PORT ...
"""

import sys

from feast import FeatureStore

_resolved = {}
_get_feature_service = FeatureStore.get_feature_service


def get_feature_service(self, name, allow_cache=False):
    service = _resolved.get(name)
    if service is None:
        service = _resolved[name] = _get_feature_service(self, name, allow_cache)
    return service


FeatureStore.get_feature_service = get_feature_service

if __name__ == "__main__":
    from feast.cli.cli import cli

    sys.exit(cli())
