// downloadModel: fetch a Vosk model zip (alphacephei's layout: one top-level folder named like the zip),
// unpack it into <destDir>/<name> and check it with libvosk. The zip is streamed to disk and unpacked
// entry by entry, so a 2 GB model never sits in memory, and a half-finished download never appears
// under its final name: everything happens in a staging directory that is renamed at the end.
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { request, type Dispatcher } from 'undici';
import yauzl, { type Entry, type ZipFile } from 'yauzl';

import { ModelDownloadError, ModelInvalidError } from '../errors.js';
import { checkModel, type ModelCheckResult } from './check.js';

export const DEFAULT_MODEL_BASE_URL = 'https://alphacephei.com/vosk/models';

export interface DownloadModelOptions {
  /** Where `${name}.zip` lives (default alphacephei's model list). */
  baseUrl?: string;
  /** Parent folder of the unpacked model (default "model"). */
  destDir?: string;
  /** undici dispatcher (proxy agent, test mock); default undici's global one. */
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  /** Passed to checkModel. */
  checkTimeoutMs?: number;
}

export interface DownloadedModel {
  dir: string;
  zipBytes: number;
  check: ModelCheckResult;
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

async function downloadZip(url: string, zipPath: string, options: DownloadModelOptions): Promise<void> {
  let response: Dispatcher.ResponseData;
  try {
    response = await request(url, {
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (err) {
    throw new ModelDownloadError(`cannot download ${url}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      retryable: true,
    });
  }
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new ModelDownloadError(`cannot download ${url}: HTTP ${response.statusCode}`, {
      details: String(response.statusCode),
      retryable: response.statusCode >= 500 || response.statusCode === 429,
    });
  }
  await pipeline(response.body, createWriteStream(zipPath));
}

function openZip(path: string): Promise<ZipFile> {
  return new Promise((resolvePromise, reject) => {
    yauzl.open(path, { lazyEntries: true }, (err, zipFile) => (err === null ? resolvePromise(zipFile) : reject(err)));
  });
}

function openEntry(zipFile: ZipFile, entry: Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolvePromise, reject) => {
    zipFile.openReadStream(entry, (err, stream) => (err === null ? resolvePromise(stream) : reject(err)));
  });
}

/**
 * Unpacks the zip's single top-level folder into `targetDir`. yauzl rejects absolute names and ".."
 * components, so nothing is written outside it.
 */
async function unzipTopFolder(zipPath: string, targetDir: string): Promise<void> {
  const zipFile = await openZip(zipPath);
  let topFolder: string | null = null;
  try {
    await new Promise<void>((resolvePromise, reject) => {
      zipFile.on('error', reject);
      zipFile.on('end', () => resolvePromise());
      zipFile.on('entry', (entry: Entry) => {
        const slash = entry.fileName.indexOf('/');
        const top = slash === -1 ? entry.fileName : entry.fileName.slice(0, slash);
        topFolder ??= top;
        if (slash === -1 || top !== topFolder) {
          reject(new ModelInvalidError(`the zip must hold one top-level folder, found ${JSON.stringify(entry.fileName)}`));
          return;
        }
        const relativeName = entry.fileName.slice(slash + 1);
        const path = join(targetDir, ...relativeName.split('/'));
        const write = relativeName === '' || relativeName.endsWith('/')
          ? mkdir(path, { recursive: true })
          : mkdir(dirname(path), { recursive: true })
              .then(() => openEntry(zipFile, entry))
              .then((stream) => pipeline(stream, createWriteStream(path)));
        write.then(() => zipFile.readEntry(), reject);
      });
      zipFile.readEntry();
    });
  } finally {
    zipFile.close();
  }
  if (topFolder === null) throw new ModelInvalidError('the zip is empty');
}

/** Downloads `${baseUrl}/${name}.zip` into `${destDir}/${name}` and checks it with libvosk. */
export async function downloadModel(name: string, options: DownloadModelOptions = {}): Promise<DownloadedModel> {
  if (!MODEL_NAME.test(name)) throw new ModelInvalidError(`not a model name: ${JSON.stringify(name)}`);
  const destDir = resolve(options.destDir ?? 'model');
  const targetDir = join(destDir, name);
  if (existsSync(targetDir)) throw new ModelInvalidError(`${targetDir} already exists; remove it to download again`);
  const url = `${(options.baseUrl ?? DEFAULT_MODEL_BASE_URL).replace(/\/+$/, '')}/${name}.zip`;

  await mkdir(destDir, { recursive: true });
  // Staging inside destDir keeps the final rename on one filesystem.
  const stagingDir = await mkdtemp(join(destDir, `.download-${name}-`));
  try {
    const zipPath = join(stagingDir, `${name}.zip`);
    await downloadZip(url, zipPath, options);
    const unpackedDir = join(stagingDir, 'unpacked');
    try {
      await unzipTopFolder(zipPath, unpackedDir);
    } catch (err) {
      if (err instanceof ModelInvalidError) throw err;
      throw new ModelInvalidError(`cannot unzip ${url}`, { cause: err });
    }
    const zipBytes = (await stat(zipPath)).size;
    await rename(unpackedDir, targetDir);
    const check = await checkModel(targetDir, {
      ...(options.checkTimeoutMs === undefined ? {} : { timeoutMs: options.checkTimeoutMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { dir: targetDir, zipBytes, check };
  } finally {
    await rm(stagingDir, { recursive: true, force: true });
  }
}
