/** Redeem: field staff redeem entitlements offline and get a signed receipt (seed 000, seed 004). */
export function RedeemArea() {
  return (
    <section class="placeholder">
      <h2>Redeem</h2>
      <p>No entitlements are on this device yet.</p>
      <p class="hint">Scanned or typed entitlement codes are checked and redeemed here, with or without a network; every redemption leaves a signed receipt.</p>
    </section>
  );
}
