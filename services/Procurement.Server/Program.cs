using Procurement.Server.Hosting;

// `Procurement.Server [--db PATH] [--urls URL] [--demo]` runs the server;
// `Procurement.Server keys|backup|restore ...` are the operator's commands on the database file;
// `Procurement.Server health` probes a running server (container health checks).
if (AdminCommands.Handles(args))
{
    try
    {
        return await AdminCommands.RunAsync(args, Console.Out, Console.Error);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
    {
        await Console.Error.WriteLineAsync($"error: {e.Message}");
        return 1;
    }
}

return await RunServerAsync(args);

static async Task<int> RunServerAsync(string[] args)
{
    var started = false;
    try
    {
        var app = ProcurementHost.Build(args);
        app.Lifetime.ApplicationStarted.Register(() => started = true);
        await app.RunAsync();
        return 0;
    }
    catch (Exception e) when (!started)
    {
        // One line naming the cause, and a non-zero exit; the host's own report is logged only at Critical.
        await Console.Error.WriteLineAsync($"Procurement.Server: cannot start: {StartupFailure.Describe(e)}");
        return 1;
    }
}
