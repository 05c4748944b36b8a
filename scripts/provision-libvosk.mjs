#!/usr/bin/env node
// Puts libvosk.so where vosk-koffi loads it. vosk-koffi's own postinstall downloads it from the internet,
// which is not reachable on our build machines; the npm package vosk@0.3.39 ships the same library, so we
// take it from the npm registry (through npm's cache) and check it against a pinned integrity hash.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VOSK_PACKAGE = 'vosk@0.3.39';
const VOSK_TARBALL_INTEGRITY =
  'sha512-/pWD6KLLxV/0Pu/ZfovNWadFC6q01hyvzY5DTEQY5r/6QlQMg60FaY1bjK0qcWN42roNOOnRrBxtAOqk7/OGkw==';
const LIBRARY_IN_TARBALL = 'package/lib/linux-x86_64/libvosk.so';
const LIBRARY_SHA256 = '9f94ef218c32e271ae8ac84065ab25191af48832c06c6e624984b1c80f0b0920';

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(projectRoot, 'node_modules', 'vosk-koffi', 'bin-linux-x64', 'libvosk.so');

function log(message) {
  process.stdout.write(`[provision-libvosk] ${message}\n`);
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  log(`skipped: libvosk from ${VOSK_PACKAGE} is built for linux-x64 only (this is ${process.platform}-${process.arch})`);
  process.exit(0);
}
if (!existsSync(join(projectRoot, 'node_modules', 'vosk-koffi'))) {
  log('skipped: vosk-koffi is not installed');
  process.exit(0);
}
const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
// A file already there may be vosk-koffi's own download (another libvosk version) or a truncated copy:
// keep it only if it is exactly the library we pin.
if (existsSync(target)) {
  if (sha256(target) === LIBRARY_SHA256) {
    log(`present: ${target}`);
    process.exit(0);
  }
  log(`replacing ${target}: it is not the libvosk of ${VOSK_PACKAGE}`);
}

const workDir = mkdtempSync(join(tmpdir(), 'voxgate-libvosk-'));
try {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', VOSK_PACKAGE, '--json', '--pack-destination', workDir], {
      cwd: workDir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  const tarball = join(workDir, packed[0].filename);
  const digest = 'sha512-' + createHash('sha512').update(readFileSync(tarball)).digest('base64');
  if (digest !== VOSK_TARBALL_INTEGRITY) {
    throw new Error(`${VOSK_PACKAGE} tarball integrity mismatch: got ${digest}`);
  }
  execFileSync('tar', ['-xzf', tarball, '-C', workDir, LIBRARY_IN_TARBALL], { stdio: 'inherit' });
  const extracted = join(workDir, LIBRARY_IN_TARBALL);
  if (sha256(extracted) !== LIBRARY_SHA256) throw new Error(`${LIBRARY_IN_TARBALL} in ${VOSK_PACKAGE} has an unexpected sha256`);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(extracted, target);
  log(`installed ${target} from ${VOSK_PACKAGE}`);
} finally {
  rmSync(workDir, { recursive: true, force: true });
}
