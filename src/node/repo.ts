/**
 * The repository on disk (`~/.shoal`, `$SHOAL_REPO` or `--repo`):
 *
 *   config.json   settings (node/config.ts)
 *   keys/         the Ed25519 identity, mode 0600 (store/keychain.ts)
 *   blocks/       content-addressed blocks (store/fs-block-store.ts)
 *   datastore/    LevelDB metadata: pins, later records and caches (store/datastore.ts)
 *   repo.lock     PID of the process that has it open (store/repo-lock.ts)
 *   api           the running daemon's API address, present while it runs
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { ShoalError, systemErrorCode } from '../core/errors.ts'
import { Datastore } from '../store/datastore.ts'
import { FsBlockStore } from '../store/fs-block-store.ts'
import { createIdentity, loadIdentity, type Identity } from '../store/keychain.ts'
import { RepoLock } from '../store/repo-lock.ts'
import createMortice, { type Mortice } from 'mortice'
import { CONFIG_FILE, defaultConfig, readConfig, writeConfig, type Config } from './config.ts'

export const API_FILE = 'api'

export function defaultRepoPath(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env['SHOAL_REPO'] || join(homedir(), '.shoal'))
}

export async function repoExists(path: string): Promise<boolean> {
  try {
    await stat(join(path, CONFIG_FILE))
    return true
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return false
    throw error
  }
}

/**
 * Creates a repository. It is built in a sibling folder and renamed into place, so an
 * interrupted init leaves no half-made repository behind.
 */
export async function initRepo(path: string, config: Config = defaultConfig()): Promise<Identity> {
  if (await repoExists(path)) throw new ShoalError('REPO_EXISTS', `a repository already exists at ${path}`)
  const entries = await readdir(path).catch((error: unknown) => {
    if (systemErrorCode(error) === 'ENOENT') return []
    throw error
  })
  if (entries.length > 0) throw new ShoalError('REPO_EXISTS', `${path} exists, is not empty and is not a Shoal repository`)
  await mkdir(dirname(path), { recursive: true })
  const staging = join(dirname(path), `.${basename(path)}.init-${process.pid}`)
  await rm(staging, { recursive: true, force: true })
  try {
    await mkdir(staging, { mode: 0o700 })
    const identity = await createIdentity(join(staging, 'keys'))
    await writeConfig(staging, config)
    await mkdir(join(staging, 'blocks'))
    await (await Datastore.open(join(staging, 'datastore'))).close()
    await rename(staging, path)
    return identity
  } catch (error) {
    await rm(staging, { recursive: true, force: true })
    throw error
  }
}

export class Repo {
  readonly path: string
  readonly config: Config
  readonly identity: Identity
  readonly blocks: FsBlockStore
  readonly datastore: Datastore
  /**
   * gc takes the write side; whatever must not see blocks swept under it (an add or a fetch
   * whose pin is not yet written, a lookup of complete content) holds the read side.
   */
  readonly gcLock: Mortice = createMortice({ singleProcess: true })
  readonly #lock: RepoLock

  private constructor(path: string, config: Config, identity: Identity, blocks: FsBlockStore, datastore: Datastore, lock: RepoLock) {
    this.path = path
    this.config = config
    this.identity = identity
    this.blocks = blocks
    this.datastore = datastore
    this.#lock = lock
  }

  /** Opens and locks a repository; REPO_MISSING, REPO_LOCKED or INVALID_CONFIG otherwise. */
  static async open(path: string): Promise<Repo> {
    if (!(await repoExists(path))) throw new ShoalError('REPO_MISSING', `no repository at ${path}; run: shoal init`)
    const config = await readConfig(path)
    const lock = await RepoLock.acquire(path)
    try {
      const identity = await loadIdentity(join(path, 'keys'))
      const blocks = await FsBlockStore.open(join(path, 'blocks'), { quotaBytes: config.storage.quotaBytes })
      const datastore = await Datastore.open(join(path, 'datastore'))
      return new Repo(path, config, identity, blocks, datastore, lock)
    } catch (error) {
      await lock.release()
      throw error
    }
  }

  async close(): Promise<void> {
    try {
      await this.blocks.close()
      await this.datastore.close()
    } finally {
      await this.#lock.release()
    }
  }
}
