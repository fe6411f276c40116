// console.js — the console's placeholder page: sign in into a session, show who is signed in
// (read back from the API), sign out. Text goes in with textContent, never as HTML.
'use strict';
(function () {
    const $ = (id) => document.getElementById(id);

    function show(who) {
        $('signin').hidden = !!who;
        $('signed-in').hidden = !who;
        $('who').textContent = who ? who.user : '';
        $('role').textContent = who ? who.role : '';
    }

    $('signin').addEventListener('submit', async (ev) => {
        ev.preventDefault();
        $('error').textContent = '';
        const r = await Rapport.signIn($('user').value, $('password').value);
        $('password').value = '';
        if (r.status !== 201) {
            $('error').textContent = (r.data && r.data.detail) || 'sign-in failed (' + r.status + ')';
            return;
        }
        show(await Rapport.me());
    });

    $('signout').addEventListener('click', async () => {
        await Rapport.signOut();
        show(null);
    });

    Rapport.me().then(show);
})();
