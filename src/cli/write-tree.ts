/**
 * `shoal get`: writes a file, symlink or directory tree from any ShoalApi to disk. The
 * result is built under a temporary name beside the target and renamed into place at the
 * end, so an interrupted get never leaves a partial file under the requested name.
 * Entry names come from a DAG that may be hostile: anything that could escape the target
 * ('..', '/', empty) is refused.
 */
import { createWriteStream } from 'node:fs'
import { lstat, mkdir, rename, rm, symlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { ShoalError, systemErrorCode } from '../core/errors.ts'
import type { EntryStat, ShoalApi } from '../node/api.ts'
import { counted, type Progress } from './progress.ts'

export interface WriteTreeOptions {
  progress: Progress
  signal?: AbortSignal
}

/** `stat` is the caller's api.stat(path), which it needs anyway to size the progress bar. */
export async function writeTree(api: ShoalApi, path: string, stat: EntryStat, outputPath: string, options: WriteTreeOptions): Promise<void> {
  if (await pathExists(outputPath)) throw new ShoalError('INVALID_ARGUMENT', `${outputPath} already exists`)
  await mkdir(dirname(outputPath), { recursive: true })
  const staging = join(dirname(outputPath), `.${outputPath.split('/').at(-1)}.shoal-partial-${process.pid}`)
  try {
    await writeEntry(api, path, stat, staging, options)
    await rename(staging, outputPath)
  } catch (error) {
    await rm(staging, { recursive: true, force: true })
    throw error
  }
}

async function writeEntry(api: ShoalApi, path: string, stat: EntryStat, target: string, options: WriteTreeOptions): Promise<void> {
  options.signal?.throwIfAborted()
  switch (stat.type) {
    case 'file':
      await pipeline(counted(api.cat(path, { signal: options.signal }), options.progress), createWriteStream(target, { flags: 'wx' }))
      return
    case 'symlink':
      await symlink(stat.target ?? '', target)
      return
    case 'directory':
      await mkdir(target)
      for (const entry of await api.ls(path)) {
        checkEntryName(entry.name, path)
        await writeEntry(api, entry.cid, entry, join(target, entry.name), options)
      }
  }
}

function checkEntryName(name: string, parent: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new ShoalError('INVALID_ARGUMENT', `refusing unsafe entry name ${JSON.stringify(name)} in ${parent}`)
  }
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return false
    throw error
  }
}
