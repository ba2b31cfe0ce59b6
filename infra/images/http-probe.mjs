// An HTTP probe for the images' admin endpoint: `node /app/http-probe.mjs http://127.0.0.1:8080/healthz` exits 0 on
// a 2xx answer within 2 s, 1 otherwise (with the reason on stderr). The images carry node and nothing else (no curl,
// no wget in node:24-slim), and every argument is free of shell syntax: podman kube play (4.3) runs an exec probe as
// a shell command made by joining the arguments with spaces, so an inline `node -e "fetch(...)"` would break there.
const url = process.argv[2];
if (!url?.startsWith('http://')) {
  console.error(`http-probe: expected one http:// URL, got ${JSON.stringify(url ?? null)}`);
  process.exit(2);
}
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!response.ok) console.error(`http-probe: ${url}: HTTP ${response.status}`);
  process.exit(response.ok ? 0 : 1);
} catch (err) {
  console.error(`http-probe: ${url}: ${err.cause?.code ?? err.name}: ${err.message}`);
  process.exit(1);
}
