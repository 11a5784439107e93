/**
 * The node id is the libp2p peer id of the node's Ed25519 key, so the network layer later
 * uses the same id. libp2p is loaded only here (it costs ~60 ms to import).
 */
export async function nodeIdFromPublicKey(publicKeyRaw: Uint8Array): Promise<string> {
  const [{ publicKeyFromRaw }, { peerIdFromPublicKey }] = await Promise.all([import('@libp2p/crypto/keys'), import('@libp2p/peer-id')]);
  return peerIdFromPublicKey(publicKeyFromRaw(publicKeyRaw)).toString();
}
