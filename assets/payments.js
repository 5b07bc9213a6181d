// Stripe.js on /membership: the card field, the card set-up and 3-D Secure.
// Card details go from this page to Stripe only. The server hands over client secrets made for this payer and
// reads every result back from Stripe itself, so what these functions report is only used to show a message.
// Loaded with import() from rx.call_script (see projectalgo/pages/membership.py).

let loaded = null; // {url, promise} of the Stripe.js script
let stripe = null;
let card = null;

function loadStripe(url) {
  if (!loaded || loaded.url !== url) {
    const promise = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = () => resolve(window.Stripe);
      script.onerror = () => reject(new Error("Stripe.js could not be loaded. Check your connection and reload the page."));
      document.head.appendChild(script);
    });
    loaded = { url, promise };
  }
  return loaded.promise;
}

async function waitFor(selector) {
  // The card field appears once the page state arrives; give it a few seconds.
  for (let tries = 0; tries < 100; tries += 1) {
    const element = document.querySelector(selector);
    if (element) return element;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("The card field did not appear. Reload the page and try again.");
}

// Stripe's own errors are plain objects with a message meant for the payer; anything else is a glitch here.
function stripeMessage(error) {
  if (error && !(error instanceof Error) && error.message) return String(error.message);
  return "Your card details could not be sent to Stripe. Check them and try again.";
}

export async function mountCard(url, publishableKey, selector) {
  try {
    const Stripe = await loadStripe(url);
    const element = await waitFor(selector);
    if (!stripe) {
      stripe = Stripe(publishableKey);
      card = stripe.elements().create("card");
    }
    if (element.childElementCount === 0) {
      // After navigating away and back the page has a new, empty container: move the field into it.
      card.unmount();
      card.mount(element);
    }
    return { error: "" };
  } catch (error) {
    return { error: error instanceof Error ? error.message : stripeMessage(error) };
  }
}

export async function setUpCard(clientSecret) {
  if (!stripe || !card) return { error: "The card field is not ready yet. Reload the page and try again." };
  try {
    const result = await stripe.confirmCardSetup(clientSecret, { payment_method: { card } });
    return { error: result.error ? stripeMessage(result.error) : "" };
  } catch (error) {
    return { error: stripeMessage(error) };
  }
}

export async function confirmPayment(clientSecret) {
  if (!stripe) return { error: "Stripe.js is not ready. Reload the page and try again." };
  try {
    const result = await stripe.confirmCardPayment(clientSecret);
    return { error: result.error ? stripeMessage(result.error) : "" };
  } catch (error) {
    return { error: stripeMessage(error) };
  }
}
