/**
 * Files and folders on disk as add candidates, following the entry rules of the IPIP-499
 * profiles: empty directories included, hidden entries (a name starting with '.') skipped
 * unless `hidden` (paths named explicitly are always included), symlinks preserved as
 * symlinks. The tree is scanned first, so a missing path fails before anything is stored
 * and the total size is known for progress; file contents are read lazily, as a stream.
 */
import { createReadStream } from 'node:fs'
import { lstat, readdir, readlink } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { ShoalError, systemErrorCode } from '../core/errors.ts'
import type { AddCandidate } from './api.ts'

export interface FsSourceOptions {
  hidden?: boolean
}

type PlannedEntry =
  | { kind: 'file'; path: string; absolutePath: string; size: number }
  | { kind: 'directory'; path: string }
  | { kind: 'symlink'; path: string; target: string }

export interface FsSource {
  readonly totalBytes: number
  candidates(): AsyncIterable<AddCandidate>
}

const READ_CHUNK_BYTES = 1024 * 1024

export async function scanPaths(paths: string[], options: FsSourceOptions = {}): Promise<FsSource> {
  const entries: PlannedEntry[] = []
  const rootNames = new Set<string>()
  for (const path of paths) {
    const name = basename(resolve(path))
    if (name === '') throw new ShoalError('INVALID_ARGUMENT', `cannot add '${path}': give a file or folder inside it`)
    if (rootNames.has(name)) throw new ShoalError('INVALID_ARGUMENT', `two arguments are named '${name}'; add them separately`)
    rootNames.add(name)
    await scan(resolve(path), name, path, entries, options.hidden ?? false)
  }
  const totalBytes = entries.reduce((sum, entry) => sum + (entry.kind === 'file' ? entry.size : 0), 0)
  return {
    totalBytes,
    async *candidates() {
      for (const entry of entries) {
        if (entry.kind !== 'file') yield entry
        else yield { kind: 'file', path: entry.path, content: readFileStream(entry.absolutePath, entry.size, entry.path) }
      }
    },
  }
}

async function scan(absolutePath: string, path: string, shownPath: string, entries: PlannedEntry[], hidden: boolean): Promise<void> {
  const stats = await fsCall(() => lstat(absolutePath), shownPath)
  if (stats.isSymbolicLink()) {
    entries.push({ kind: 'symlink', path, target: await fsCall(() => readlink(absolutePath), shownPath) })
  } else if (stats.isFile()) {
    entries.push({ kind: 'file', path, absolutePath, size: stats.size })
  } else if (stats.isDirectory()) {
    entries.push({ kind: 'directory', path })
    const names = (await fsCall(() => readdir(absolutePath), shownPath)).sort()
    for (const name of names) {
      if (!hidden && name.startsWith('.')) continue
      await scan(join(absolutePath, name), `${path}/${name}`, join(shownPath, name), entries, hidden)
    }
  } else {
    throw new ShoalError('INVALID_ARGUMENT', `cannot add ${shownPath}: not a regular file, folder or symlink`)
  }
}

async function* readFileStream(absolutePath: string, size: number, shownPath: string): AsyncIterable<Uint8Array> {
  try {
    // Each read allocates a buffer of highWaterMark bytes: a small file gets a small one.
    yield* createReadStream(absolutePath, { highWaterMark: Math.min(Math.max(size, 1), READ_CHUNK_BYTES) })
  } catch (error) {
    throw fsError(error, shownPath)
  }
}

async function fsCall<T>(call: () => Promise<T>, shownPath: string): Promise<T> {
  try {
    return await call()
  } catch (error) {
    throw fsError(error, shownPath)
  }
}

function fsError(error: unknown, shownPath: string): unknown {
  switch (systemErrorCode(error)) {
    case 'ENOENT':
      return new ShoalError('PATH_NOT_FOUND', `no such file or folder: ${shownPath}`)
    case 'EACCES':
    case 'EPERM':
      return new ShoalError('INVALID_ARGUMENT', `cannot read ${shownPath}: permission denied`)
    default:
      return error
  }
}
