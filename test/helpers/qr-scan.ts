/**
 * What a phone camera reads off a screen: a Playwright screenshot of `target`, decoded back to pixels by Chromium's
 * own PNG decoder in a blank page of `browser`, then scanned by jsQR. Used by the end-to-end tests of the wallet
 * and of issue 14's done-when run.
 */
import jsQR from 'jsqr';
import type { Browser, Locator } from 'playwright-core';

export async function scanQr(browser: Browser, target: Locator, options: { path?: string } = {}): Promise<string | null> {
  const png = await target.screenshot(options.path === undefined ? {} : { path: options.path });
  const decoder = await browser.newPage();
  try {
    const { width, height, data } = await decoder.evaluate(async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      // At most 720 px a side: plenty of pixels per module, and a small array to hand back.
      const scale = Math.min(1, 720 / Math.max(img.naturalWidth, img.naturalHeight));
      const canvas = document.createElement('canvas');
      canvas.width = Math.round(img.naturalWidth * scale);
      canvas.height = Math.round(img.naturalHeight * scale);
      const ctx = canvas.getContext('2d')!;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let binary = '';
      for (let i = 0; i < rgba.length; i += 0x8000) binary += String.fromCharCode(...rgba.subarray(i, i + 0x8000));
      return { width: canvas.width, height: canvas.height, data: btoa(binary) };
    }, png.toString('base64'));
    return jsQR(new Uint8ClampedArray(Buffer.from(data, 'base64')), width, height, { inversionAttempts: 'dontInvert' })?.data ?? null;
  } finally {
    await decoder.close();
  }
}
