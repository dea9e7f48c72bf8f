/**
 * The node's identity: an Ed25519 key pair in `keys/self.key` (libp2p's protobuf key
 * encoding, file mode 0600). The PeerId is derived from it by libp2p's own packages.
 */
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { ShoalError } from '../core/errors.ts'

const SELF_KEY_FILE = 'self.key'

export interface Identity {
  privateKey: PrivateKey
  peerId: PeerId
}

export async function createIdentity(keysPath: string): Promise<Identity> {
  await mkdir(keysPath, { recursive: true, mode: 0o700 })
  const privateKey = await generateKeyPair('Ed25519')
  const path = join(keysPath, SELF_KEY_FILE)
  await writeFile(path, privateKeyToProtobuf(privateKey), { mode: 0o600, flag: 'wx' })
  await chmod(path, 0o600)
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey) }
}

export async function loadIdentity(keysPath: string): Promise<Identity> {
  const path = join(keysPath, SELF_KEY_FILE)
  const mode = (await stat(path)).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new ShoalError('INVALID_CONFIG', `key file ${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`)
  }
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(await readFile(path))
  } catch (error) {
    throw new ShoalError('INVALID_CONFIG', `key file ${path} is not a valid libp2p private key`, { cause: error })
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey) }
}
