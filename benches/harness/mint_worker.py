"""The token signer: `run.py --mint-worker` runs main() in a process of its
own, under a Python that has `cryptography` (the peers' virtualenv), with a
JSON job list on stdin; it writes the token files the jobs name.

Standard library only but for `cryptography`, imported inside main(); like
every module of the harness it needs nothing else, which is what lets that
other Python run it. It imports nothing of the harness.
"""
import hashlib
import json
import sys
from pathlib import Path


def main():
    """`python run.py --mint-worker` under a Python with `cryptography` (the
    peers' venv): reads a JSON job list on stdin, writes one token per line per
    job. RS256 as an Auth0 tenant signs: header {alg, typ, kid}, claims {iss,
    sub, aud, iat, exp, jti}. The only code here outside the standard library,
    imported only in this mode."""
    import base64
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64url(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    spec = json.load(sys.stdin)
    key = serialization.load_pem_private_key(Path(spec["key"]).read_bytes(), password=None)
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": spec["kid"]}, separators=(",", ":")).encode())
    pad, sha = padding.PKCS1v15(), hashes.SHA256()
    for job in spec["jobs"]:
        with open(job["out"], "w") as f:
            for i in range(job["start"], job["start"] + job["count"]):
                sub = f"{job['sub_prefix']}{i}"
                if spec.get("random_subs"):
                    # As Auth0 makes them (a connection, then 24 hex digits), the same for
                    # the same prefix and i, so that the known-users pass finds the rows.
                    sub = "auth0|" + hashlib.sha256(sub.encode()).hexdigest()[:24]
                claims = {"iss": spec["iss"], "sub": sub, "aud": spec["aud"],
                          "iat": spec["iat"], "exp": spec["exp"], "jti": f"{job['jti_prefix']}{i}"}
                signing_input = header + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
                sig = key.sign(signing_input.encode("ascii"), pad, sha)
                f.write(signing_input + "." + b64url(sig) + "\n")
