"""Certificates for the TLS tests: a CA of the tests' own, a server and a client certificate it signs, and an
impostor (a server certificate from another CA), written as PEM files in a temporary directory."""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: ``ca`` signs ``server_cert`` (for 127.0.0.1 and localhost) and ``client_cert``;
    ``untrusted_ca`` signs ``impostor_cert``, a server certificate for the same names."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    untrusted_ca: Path
    impostor_cert: Path
    impostor_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _sign(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls_files(directory: Path) -> TlsFiles:
    """Write a CA, the certificates it signs, and an impostor's, into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for prefix, ca_name in (("", "fastapi_sessions test CA"), ("untrusted_", "an untrusted CA")):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _sign(ca_name, ca_key, None, None)
        files[f"{prefix}ca"] = _write_cert(ca_cert, directory / f"{prefix}ca.pem")
        leaves: list[tuple[str, x509.ObjectIdentifier]] = [("server", ExtendedKeyUsageOID.SERVER_AUTH)]
        if not prefix:
            leaves.append(("client", ExtendedKeyUsageOID.CLIENT_AUTH))
        for leaf, usage in leaves:
            name = leaf if not prefix else "impostor"
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _sign(f"redis {name}", key, (ca_cert.subject, ca_key), usage)
            files[f"{name}_cert"] = _write_cert(cert, directory / f"{name}.pem")
            files[f"{name}_key"] = _write_key(key, directory / f"{name}.key")
    return TlsFiles(**files)
