/**
 * UnixFS CID profiles of IPIP-499 (ipfs/specs src/ipips/ipip-0499.md). The importer
 * implements each profile's DAG parameters; the entry rules the profiles share (empty
 * directories included, hidden entries excluded unless asked, symlinks preserved) are
 * applied by the filesystem walker, node/fs-source.ts.
 */
import { ShoalError } from '../errors.ts'

export const CID_PROFILES = ['unixfs-v1-2025', 'unixfs-v0-2015'] as const
export type CidProfile = (typeof CID_PROFILES)[number]
export const CID_PROFILE_DEFAULT: CidProfile = 'unixfs-v1-2025'

export function parseCidProfile(text: string): CidProfile {
  const found = CID_PROFILES.find((profile) => profile === text)
  if (found === undefined) {
    throw new ShoalError('INVALID_ARGUMENT', `unknown CID profile '${text}' (expected one of: ${CID_PROFILES.join(', ')})`)
  }
  return found
}
