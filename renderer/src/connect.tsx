import { useState } from 'preact/hooks';

/** Shown in a browser that has no token yet: paste the URL the CLI printed, or the token itself. */
export function ConnectScreen(props: { onToken: (token: string) => void; rejected?: boolean }) {
  const [value, setValue] = useState('');
  const submit = (e: Event) => {
    e.preventDefault();
    const text = value.trim();
    const fromUrl = /#token=([^&\s]+)/.exec(text)?.[1];
    const token = fromUrl ? decodeURIComponent(fromUrl) : text;
    if (token) props.onToken(token);
  };
  return (
    <main class="connect">
      <h1>Tessera</h1>
      {props.rejected ? <p class="error" role="alert">This runtime did not accept the token. It may have been replaced.</p> : null}
      <p>
        Open the link that <code>tessera start</code> printed, or paste it (or the token from <code>&lt;data&gt;/api-token</code>) here.
      </p>
      <form onSubmit={submit}>
        <label for="token">Link or token</label>
        <input id="token" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <button type="submit">Connect</button>
      </form>
    </main>
  );
}
