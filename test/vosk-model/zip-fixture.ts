// A store-only (uncompressed) zip writer for tests: enough to serve a generated model the way
// alphacephei serves real ones, one top-level folder per zip, without a zip tool on the machine.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { crc32 } from 'node:zlib';

interface ZipEntry {
  name: string;
  data: Buffer;
}

function localHeader(entry: ZipEntry, crc: number): Buffer {
  const name = Buffer.from(entry.name, 'utf8');
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(20, 4); // version needed
  header.writeUInt16LE(0x0800, 6); // UTF-8 names
  header.writeUInt16LE(0, 8); // stored
  header.writeUInt32LE(crc, 14);
  header.writeUInt32LE(entry.data.length, 18);
  header.writeUInt32LE(entry.data.length, 22);
  header.writeUInt16LE(name.length, 26);
  return Buffer.concat([header, name]);
}

function centralHeader(entry: ZipEntry, crc: number, offset: number): Buffer {
  const name = Buffer.from(entry.name, 'utf8');
  const header = Buffer.alloc(46);
  header.writeUInt32LE(0x02014b50, 0);
  header.writeUInt16LE(20, 4); // version made by
  header.writeUInt16LE(20, 6); // version needed
  header.writeUInt16LE(0x0800, 8);
  header.writeUInt16LE(0, 10);
  header.writeUInt32LE(crc, 16);
  header.writeUInt32LE(entry.data.length, 20);
  header.writeUInt32LE(entry.data.length, 24);
  header.writeUInt16LE(name.length, 28);
  header.writeUInt32LE(offset, 42);
  return Buffer.concat([header, name]);
}

export function zipEntries(entries: readonly ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const crc = crc32(entry.data);
    const local = Buffer.concat([localHeader(entry, crc), entry.data]);
    centrals.push(centralHeader(entry, crc, offset));
    locals.push(local);
    offset += local.length;
  }
  const central = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(central.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, central, end]);
}

/** Zips `dir` under the top-level folder `topFolder/`, directories included, as alphacephei's zips are. */
export async function zipDirectory(dir: string, topFolder: string): Promise<Buffer> {
  const entries: ZipEntry[] = [{ name: `${topFolder}/`, data: Buffer.alloc(0) }];
  for (const item of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(item.parentPath, item.name);
    const name = `${topFolder}/${relative(dir, path).split('\\').join('/')}`;
    if (item.isDirectory()) entries.push({ name: `${name}/`, data: Buffer.alloc(0) });
    else if (item.isFile()) entries.push({ name, data: await readFile(path) });
  }
  return zipEntries(entries);
}
