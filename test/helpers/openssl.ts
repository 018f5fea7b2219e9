/**
 * Checks a DSSE envelope's Ed25519 signature with OpenSSL alone, with the commands a bundle's README.txt gives:
 * rebuild the PAE with jq/base64/printf, then `openssl pkeyutl -verify`. Returns what OpenSSL printed.
 */
import { spawnSync } from 'node:child_process';

export function dsseScript(envelopeFile: string, pemFile: string): string {
  return [
    `R=${envelopeFile}`,
    'jq -r .payload "$R" | base64 -d > payload.json',
    "jq -r '.signatures[0].sig' \"$R\" | base64 -d > sig.bin",
    'T=$(jq -r .payloadType "$R")',
    'printf \'DSSEv1 %d %s %d \' "${#T}" "$T" "$(stat -c %s payload.json)" > pae.bin',
    'cat payload.json >> pae.bin',
    `openssl pkeyutl -verify -pubin -inkey ${pemFile} -rawin -in pae.bin -sigfile sig.bin`,
  ].join('\n');
}

/** Runs {@link dsseScript} in `dir` (an unzipped bundle); `tamper` changes one byte of the PAE first. */
export function opensslVerifyDsse(dir: string, envelopeFile: string, pemFile: string, tamper = false): string {
  const script = dsseScript(envelopeFile, pemFile);
  const run = tamper ? script.replace('cat payload.json >> pae.bin', "cat payload.json >> pae.bin\nprintf 'x' | dd of=pae.bin bs=1 seek=60 conv=notrunc status=none") : script;
  return spawnSync('bash', ['-euo', 'pipefail', '-c', run], { cwd: dir, encoding: 'utf8' }).stdout;
}
