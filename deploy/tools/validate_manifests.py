"""Validates rendered Kubernetes manifests (`cargo xtask deploy-check`).

Every resource is checked against the Kubernetes JSON schemas of each
version given with --kubernetes-version, in strict mode (unknown fields are
errors), by kubernetes-validate. A kind it has no schema for is an error,
except KEDA's ScaledObject, which is checked against a schema derived from
KEDA's CRD (the cloudcoil-models-keda models), also strictly, plus the
parameters of KEDA's nats-jetstream trigger, and cert-manager's Issuer and
Certificate, checked likewise against its CRDs (cloudcoil-models-cert-manager).

Usage: python validate_manifests.py -k 1.30 -k 1.37 FILE...
"""

import argparse
import sys

import jsonschema
import yaml
from kubernetes_validate import utils

# KEDA's nats-jetstream trigger parameters (keda.sh/docs/scalers/nats-jetstream).
NATS_JETSTREAM_REQUIRED = {"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"}
NATS_JETSTREAM_OPTIONAL = {"activationLagThreshold", "useHttps"}


def strict(schema):
    """Rejects unknown fields everywhere, as kubernetes-validate's strict mode does."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def scaled_object_validator():
    from cloudcoil.models.keda import v1alpha1

    schema = strict(v1alpha1.ScaledObject.model_json_schema(by_alias=True))
    return jsonschema.Draft202012Validator(schema)


def cert_manager_validators():
    from cloudcoil.models.cert_manager import v1

    return {
        kind: jsonschema.Draft202012Validator(strict(getattr(v1, kind).model_json_schema(by_alias=True)))
        for kind in ("Issuer", "ClusterIssuer", "Certificate")
    }


def schema_errors(validator, resource):
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(resource)
    ]


def check_scaled_object(validator, resource):
    errors = schema_errors(validator, resource)
    for i, trigger in enumerate(resource.get("spec", {}).get("triggers", [])):
        if trigger.get("type") != "nats-jetstream":
            continue
        keys = set(trigger.get("metadata", {}))
        for missing in sorted(NATS_JETSTREAM_REQUIRED - keys):
            errors.append(f"spec.triggers.{i}.metadata: missing {missing}")
        for unknown in sorted(keys - NATS_JETSTREAM_REQUIRED - NATS_JETSTREAM_OPTIONAL):
            errors.append(f"spec.triggers.{i}.metadata: unknown parameter {unknown}")
    return errors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    scaled_objects = scaled_object_validator()
    cert_manager = cert_manager_validators()
    failures = 0
    checked = 0
    for filename in args.files:
        with open(filename) as f:
            resources = [r for r in yaml.safe_load_all(f) if r]
        for resource in resources:
            name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
            if resource.get("kind") == "ScaledObject" and resource.get("apiVersion") == "keda.sh/v1alpha1":
                errors = check_scaled_object(scaled_objects, resource)
            elif resource.get("apiVersion") == "cert-manager.io/v1" and resource.get("kind") in cert_manager:
                errors = schema_errors(cert_manager[resource["kind"]], resource)
            else:
                errors = []
                for version in args.kubernetes_version:
                    try:
                        utils.validate(resource, version, strict=True)
                    except utils.ValidationError as e:
                        path = ".".join(str(p) for p in e.path)
                        errors.append(f"Kubernetes {version}: {path}: {e.message}")
                    except utils.SchemaNotFoundError as e:
                        errors.append(e.message)
            checked += 1
            for error in errors:
                failures += 1
                print(f"ERROR {filename}: {name}: {error}")
    versions = ", ".join(args.kubernetes_version)
    print(f"{checked} resources checked against Kubernetes {versions} (strict), {failures} errors")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
