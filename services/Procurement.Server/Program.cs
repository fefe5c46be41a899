using Procurement.Server.Hosting;

// `Procurement.Server [--db PATH] [--urls URL] [--demo]` runs the server;
// `Procurement.Server keys|backup|restore ...` are the operator's commands on the database file;
// `Procurement.Server health` probes a running server (container health checks).
if (args.FirstOrDefault() is "keys" or "backup" or "restore" or "health")
{
    try
    {
        return args[0] switch
        {
            "keys" => await AdminCommands.KeysAsync(args[1..], Console.Out, Console.Error),
            "backup" => await AdminCommands.BackupAsync(args[1..], Console.Out, Console.Error),
            "restore" => await AdminCommands.RestoreAsync(args[1..], Console.Out, Console.Error),
            _ => await AdminCommands.HealthAsync(args[1..], Console.Out, Console.Error),
        };
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
    var app = ProcurementHost.Build(args);
    await app.RunAsync();
    return 0;
}
