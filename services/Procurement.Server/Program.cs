using Procurement.Server.Hosting;

// `Procurement.Server [--db PATH] [--urls URL] [--demo]` runs the server;
// `Procurement.Server keys|backup ...` are the operator's offline commands on the same database file.
return args.FirstOrDefault() switch
{
    "keys" => await AdminCommands.KeysAsync(args[1..], Console.Out, Console.Error),
    "backup" => await AdminCommands.BackupAsync(args[1..], Console.Out, Console.Error),
    _ => await RunServerAsync(args),
};

static async Task<int> RunServerAsync(string[] args)
{
    var app = ProcurementHost.Build(args);
    await app.RunAsync();
    return 0;
}
