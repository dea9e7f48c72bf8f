/**
 * The datastore: the node's metadata (pins, the peer cache, DHT records; channel logs
 * later) in LevelDB, one sublevel per kind, JSON values. Writes are synced
 * so that a record never outlives a crash that the blocks it names did not survive.
 */
import { ClassicLevel } from 'classic-level'
import { ShoalError, systemErrorCode } from '../core/errors.ts'
import { DhtRecords } from './dht-records.ts'
import { Ledger } from './ledger.ts'
import { PeerCache, type PeerCacheLimits } from './peer-cache.ts'
import { PinStore } from './pin-store.ts'

const WRITE_BUFFER_BYTES = 2 ** 20

export class Datastore {
  readonly pins: PinStore
  readonly #db: ClassicLevel<string, string>

  private constructor(db: ClassicLevel<string, string>) {
    this.#db = db
    this.pins = new PinStore(db.sublevel('pins', { valueEncoding: 'json' }))
  }

  static async open(path: string): Promise<Datastore> {
    // The datastore holds metadata (a soak daemon's is 1.2 MiB on disk). LevelDB's default
    // write buffer of 4 MiB fills over hours of such writes and is resident until flushed.
    const db = new ClassicLevel<string, string>(path, { valueEncoding: 'json', writeBufferSize: WRITE_BUFFER_BYTES })
    try {
      await db.open()
    } catch (error) {
      if (systemErrorCode((error as { cause?: unknown }).cause) === 'LEVEL_LOCKED') {
        throw new ShoalError('REPO_LOCKED', `datastore ${path} is in use by another process`, { cause: error })
      }
      throw error
    }
    return new Datastore(db)
  }

  peerCache(limits: PeerCacheLimits): PeerCache {
    return new PeerCache(this.#db.sublevel('peers', { valueEncoding: 'json' }), limits)
  }

  dhtRecords(): DhtRecords {
    return new DhtRecords(this.#db.sublevel('dht-providers', { valueEncoding: 'json' }), this.#db.sublevel('dht-values', { valueEncoding: 'json' }))
  }

  ledger(): Ledger {
    return new Ledger(this.#db.sublevel('ledger', { valueEncoding: 'json' }))
  }

  async close(): Promise<void> {
    await this.#db.close()
  }
}
